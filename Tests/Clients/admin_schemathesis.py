#!/usr/bin/env python3
"""Fuzzes a running gateway's Admin API with schemathesis against its OpenAPI document.

    python3 Tests/Clients/admin_schemathesis.py --url http://127.0.0.1:PORT --key ADMIN_KEY \
        --schema URL_OR_PATH (e.g. http://127.0.0.1:PORT/apisix/admin/openapi.json) [--max-examples N]

Runs `schemathesis run` (the CLI of the schemathesis package, from this Python or else from the
repository's .build/venv) with a fixed seed and these checks: no 5xx, and every status code,
Content-Type, body and header as documented. `--max-examples 10` takes about a minute on two cores.
Arguments after `--` go to `schemathesis run` as they are (e.g. `-- --include-path-regex routes`).
Then checks the gateway survived: every list of the Admin API still answers 200 with a
`{"total", "list"}` body. Exits non-zero, with schemathesis's report of the failures, when
anything fails. Writes nothing outside a temporary directory.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
]

# The coverage phase derives every boundary case of every schema: cheap for the operations
# without a body (query and path parameters), minutes for the plugin-laden bodies of writes, which
# the fuzzing phase covers instead.
CONFIG = """
[[operations]]
include-method = ["PUT", "POST", "PATCH"]
phases.coverage.enabled = false
"""

# The lists checked after the run: the store must still load and answer.
LISTS = [
    "routes", "services", "upstreams", "consumers", "consumer_groups", "plugin_configs", "global_rules", "ssls",
    "secrets", "secrets/vault", "plugin_metadata",
]


def admin_get(url, key, path):
    request = urllib.request.Request(url.rstrip("/") + "/apisix/admin/" + path, headers={"X-API-KEY": key})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def store_intact(url, key):
    """Every list still answers 200 with a list body; every consumer's credentials too."""
    problems = []
    consumers = []
    for path in LISTS:
        try:
            status, body = admin_get(url, key, path)
        except OSError as error:
            problems.append(f"GET /apisix/admin/{path}: {error}")
            continue
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if status != 200 or not isinstance(parsed, dict) or not isinstance(parsed.get("list"), list):
            problems.append(f"GET /apisix/admin/{path}: {status} {body[:300]!r}")
            continue
        print(f"  GET /apisix/admin/{path}: 200, total {parsed.get('total')}")
        if path == "consumers":
            consumers = [item.get("value", {}).get("username") for item in parsed["list"]
                         if isinstance(item.get("value"), dict)]
    for username in consumers:
        if not username:
            continue
        path = f"consumers/{urllib.request.quote(username, safe='')}/credentials"
        try:
            status, body = admin_get(url, key, path)
        except OSError as error:
            problems.append(f"GET /apisix/admin/{path}: {error}")
            continue
        if status != 200:
            problems.append(f"GET /apisix/admin/{path}: {status} {body[:300]!r}")
    return problems


def schemathesis_python():
    """A Python that has schemathesis: this one, else the repository's .build/venv (scripts/test.sh)."""
    try:
        import schemathesis  # noqa: F401

        return sys.executable
    except ImportError:
        pass
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    venv = os.path.join(root, ".build", "venv", "bin", "python3")
    if os.path.exists(venv) and subprocess.run([venv, "-c", "import schemathesis"]).returncode == 0:
        return venv
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the admin listener, e.g. http://127.0.0.1:9180")
    parser.add_argument("--key", required=True, help="an admin key (reads and writes)")
    parser.add_argument("--schema", required=True, help="path (or URL) of the OpenAPI document")
    parser.add_argument("--max-examples", type=int, default=10, help="test cases per operation (default 10)")
    parser.add_argument("--seed", type=int, default=20240601, help="hypothesis seed (default fixed)")
    parser.add_argument("--workers", default="1", help="concurrent schemathesis workers (default 1)")
    parser.add_argument("extra", nargs="*", help="more `schemathesis run` arguments, after `--`")
    args = parser.parse_args()

    if "://" not in args.schema and not os.path.isfile(args.schema):
        print(f"admin_schemathesis: no schema file {args.schema}", file=sys.stderr)
        return 2
    schema = os.path.abspath(args.schema) if "://" not in args.schema else args.schema
    python = schemathesis_python()
    if python is None:
        print("admin_schemathesis: schemathesis is not installed (pip install schemathesis; scripts/test.sh "
              "installs it into .build/venv)", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="admin-schemathesis-") as work:
        config = os.path.join(work, "schemathesis.toml")
        with open(config, "w") as f:
            f.write(CONFIG)
        command = [
            python, "-m", "schemathesis.cli", "--config-file", config, "run", schema,
            "--url", args.url.rstrip("/"),
            "--header", f"X-API-KEY: {args.key}",
            "--checks", ",".join(CHECKS),
            "--max-examples", str(args.max_examples),
            "--seed", str(args.seed),
            "--workers", str(args.workers),
            "--generation-database", "none",
            "--suppress-health-check", "all",
            "--request-timeout", "10",
            "--warnings", "off",
            "--no-color",
            "--output-truncate", "false",
            "--report-dir", work,
        ]
        command += args.extra
        printable = [("X-API-KEY: ***" if part.startswith("X-API-KEY:") else part) for part in command]
        print("$ " + " ".join(printable), flush=True)
        started = time.monotonic()
        # A fixed hash seed too: hypothesis's choices must not depend on set iteration order.
        environment = dict(os.environ, PYTHONHASHSEED="0")
        result = subprocess.run(command, cwd=work, env=environment)
        elapsed = time.monotonic() - started
        print(f"schemathesis exited with {result.returncode} after {elapsed:.1f} s", flush=True)

    print("checking the store is intact:")
    problems = store_intact(args.url, args.key)
    for problem in problems:
        print(f"  FAILED {problem}")

    if result.returncode != 0:
        print("admin_schemathesis: schemathesis found failures (see above)", file=sys.stderr)
        return result.returncode
    if problems:
        print("admin_schemathesis: the Admin API is not intact after the run", file=sys.stderr)
        return 1
    print("admin_schemathesis: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
