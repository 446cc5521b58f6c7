"""Configuration propagation between two cluster nodes: N route writes through node A's Admin
API, each timed until node B's proxy serves the new value. Prints p50 / p90 / max in ms.

usage: cluster_propagation.py A_ADMIN_PORT B_PROXY_PORT ADMIN_KEY [N]
"""
import json
import statistics
import sys
import time
import urllib.error
import urllib.request

admin_port, proxy_port, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
count = int(sys.argv[4]) if len(sys.argv) > 4 else 100


def put_route(value):
    body = json.dumps({"uri": "/probe", "plugins": {"mocking": {"response_example": value}}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{admin_port}/apisix/admin/routes/probe", data=body, method="PUT",
        headers={"X-API-KEY": key})
    urllib.request.urlopen(request, timeout=10).read()


def served():
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{proxy_port}/probe", timeout=10).read().decode()
    except urllib.error.HTTPError:
        return None


delays = []
for i in range(count):
    value = f"v{i}"
    put_route(value)
    acknowledged = time.monotonic()
    while served() != value:
        if time.monotonic() - acknowledged > 10:
            sys.exit(f"write {i} not seen on node B within 10 s")
        time.sleep(0.001)
    delays.append((time.monotonic() - acknowledged) * 1000)

delays.sort()
print(f"| writes | p50 ms | p90 ms | max ms |")
print(f"|---|---|---|---|")
print(f"| {count} | {statistics.median(delays):.1f} | {delays[int(count * 0.9) - 1]:.1f} | {delays[-1]:.1f} |")
