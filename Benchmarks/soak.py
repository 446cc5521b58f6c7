#!/usr/bin/env python3
"""Soak under faults: `Benchmarks/run.sh --soak MINUTES --faults [--rate N]` runs this.

One asyncio process (Python standard library only) plays two parts:

* Fake OpenAI-compatible providers, one per port. Each upstream attempt draws at most one fault
  from FAULTS below (known probabilities): TCP resets before the head, after the head and
  mid-stream, 429 with and without Retry-After, 500, stalls longer than the gateway's timeouts,
  and garbage SSE events. Every fault is counted by kind and by the request's X-Request-Id
  (the gateway sends the client's id upstream, on retries and continuations too).
* An open-loop client: mixed chat / stream / embeddings at a steady rate through the gateway,
  each result classified as the client sees it (2xx ok, in-band stream error, status and error
  code, connection error).

It configures its own route through the Admin API: `ai-proxy-multi` over the fakes with
retries, fallback and stream continuation, timeouts of a few seconds (the gateway's defaults are
`timeout` = 30 s, far longer than a soak wants a stall to last), and `ai-rate-limiting` with a
limit never reached, so every request reserves and settles quota.

Every minute it prints a markdown row: the gateway's RSS and open descriptors, the dashboard's
in-flight and reserved-quota sums, requests sent, client errors by class and faults injected.
At the end (traffic stopped, every request answered, a few quiet seconds) in-flight and
reserved must be 0, and every client-visible error must be explained by a fault injected into
that same request: "UNEXPLAINED: N", exit status 1 if anything is off.
"""
import argparse
import asyncio
import collections
import http.client
import json
import os
import random
import socket
import struct
import sys
import time

# --- faults ----------------------------------------------------------------------------------
# (kind, probability per upstream attempt, streams only, what the fake does). At most one fault
# per attempt. A few % each: with retries and fallback most requests still succeed, so what
# reaches the client is the rare request whose every attempt failed, or a stream that broke
# after content and could not be continued.
FAULTS = [
    ("rst-head", 0.03, False, "TCP reset after reading the request, before any response byte"),
    ("rst-body", 0.03, False, "TCP reset after the response head (and part of the body, or the role chunk)"),
    ("rst-stream", 0.04, True, "TCP reset after 3 content chunks of a stream"),
    ("429+ra", 0.03, False, "429 with Retry-After: 1"),
    ("429", 0.03, False, "429 without Retry-After"),
    ("500", 0.04, False, "500 with a JSON error body"),
    ("stall-head", 0.02, False, "silence after reading the request, until the gateway gives up"),
    ("stall-body", 0.02, False, "silence after the head (and part of the body, or the role chunk)"),
    ("stall-stream", 0.03, True, "silence after 3 content chunks of a stream"),
    ("bad-sse", 0.05, True, "two garbage `data:` events in a stream that then completes"),
]
KINDS = [f[0] for f in FAULTS]
# Which injected faults can explain a client-visible result (see explain()).
RESETS = {"rst-head", "rst-body"}
STALLS = {"stall-head", "stall-body"}
RATE_LIMITS = {"429", "429+ra"}

ROUTE_ID = "soak"
INSTANCES = 4
CONTENT_CHUNKS = 8  # per normal stream, CHUNK_GAP_S apart
CHUNK_GAP_S = 0.025
CLIENT_TIMEOUT_S = 60  # a client request still unanswered by then is a gateway hang
IDLE_CONNECTION_S = 5  # the client reuses keep-alive connections idle at most this long


def sse(obj):
    return "data: " + (obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))) + "\n\n"


def chunk_event(delta, finish=None):
    return sse({"id": "chatcmpl-soak", "object": "chat.completion.chunk", "model": "fake-model",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


CHAT_ANSWER = json.dumps({
    "id": "chatcmpl-soak", "object": "chat.completion", "created": 1700000000, "model": "fake-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "The quick brown fox jumps over the lazy dog."},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}}).encode()
EMBEDDINGS_ANSWER = json.dumps({
    "object": "list", "model": "fake-embedding",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.0023, -0.0093, 0.0157, -0.0076]}],
    "usage": {"prompt_tokens": 8, "total_tokens": 8}}).encode()
ROLE_EVENT = chunk_event({"role": "assistant", "content": ""})
CONTENT_EVENTS = [chunk_event({"content": f"word{i} "}) for i in range(CONTENT_CHUNKS)]
END_EVENTS = (chunk_event({}, "stop")
              + sse({"id": "chatcmpl-soak", "object": "chat.completion.chunk", "model": "fake-model", "choices": [],
                     "usage": {"prompt_tokens": 20, "completion_tokens": CONTENT_CHUNKS,
                               "total_tokens": 20 + CONTENT_CHUNKS}})
              + sse("[DONE]"))
GARBAGE_EVENTS = ['data: {"id":"chatcmpl-soak","choices":[{"delta":{"content":"tru\n\n',
                  "data: <<not json at all>>\n\n"]


def error_answer(status, reason, code, extra=b""):
    body = json.dumps({"error": {"message": f"injected {status}", "type": "fake_error", "code": code}}).encode()
    return (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
            % (status, reason, len(body), extra)) + body


# --- a little HTTP/1.1 -------------------------------------------------------------------------
async def read_head(reader):
    """(first line, headers with lower-case names), or None at a clean end of the connection."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise
    lines = raw.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


async def read_body(reader, headers, limit=4 << 20):
    """The whole body: by Content-Length, chunked, or (neither) until the connection closes."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                return bytes(body)
            body += await reader.readexactly(size)
            await reader.readexactly(2)
            if len(body) > limit:
                raise ValueError("body over the limit")
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    return await reader.read(limit)


def reset(writer):
    """Closes with a TCP RST (SO_LINGER 0), not a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


# --- the fake providers ----------------------------------------------------------------------------
class FakeProviders:
    def __init__(self, ports, stall_s, rng):
        self.ports = ports
        self.stall_s = stall_s
        self.rng = rng
        self.injected = collections.Counter()  # kind -> faults injected, since the start
        self.attempts = 0  # upstream attempts seen (requests and continuations)
        self.continuations = 0  # of which continuations (an assistant message last)
        # X-Request-Id -> faults injected into that client request (taken by the client when its
        # answer is in; anything left over is pruned after a while).
        self.by_request = {}
        # Stalls the gateway never abandoned (it did not close the connection within stall_s):
        # it would hold a connection, and a descriptor, it should have given up.
        self.stalls_held = 0
        self.servers = []
        self.handlers = {}  # connection handler task -> its writer

    async def start(self):
        for port in self.ports:
            self.servers.append(await asyncio.start_server(self.serve, "127.0.0.1", port, backlog=1024))

    async def stop(self):
        """Closes the listeners and the connections still open (the gateway's idle pooled ones),
        and waits for their handlers to end, so none is left to be cancelled at exit."""
        for server in self.servers:
            server.close()
        for writer in self.handlers.values():
            writer.transport.abort()
        if self.handlers:
            await asyncio.wait(list(self.handlers), timeout=5)
        for server in self.servers:
            await server.wait_closed()

    def draw(self, stream):
        x = self.rng.random()
        for kind, probability, streams_only, _ in FAULTS:
            if streams_only and not stream:
                continue
            if x < probability:
                return kind
            x -= probability
        return None

    def take(self, request_id):
        """The faults injected into one client request (forgotten afterwards)."""
        entry = self.by_request.pop(request_id, None)
        return entry[1] if entry else []

    def prune(self, older_than_s=300):
        cutoff = time.monotonic() - older_than_s
        for rid in [rid for rid, (t, _) in self.by_request.items() if t < cutoff]:
            del self.by_request[rid]

    async def serve(self, reader, writer):
        task = asyncio.current_task()
        self.handlers[task] = writer
        try:
            while True:
                head = await read_head(reader)
                if head is None:
                    break
                line, headers = head
                body = await read_body(reader, headers)
                if not await self.answer(line, headers, body, reader, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, OSError):
            pass
        finally:
            del self.handlers[task]
            writer.close()

    async def answer(self, line, headers, body, reader, writer):
        """Answers one request; False when the connection must not be reused."""
        path = line.split(" ")[1] if " " in line else ""
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = {}
        stream = bool(request.get("stream"))
        messages = request.get("messages") or []
        self.attempts += 1
        if stream and messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant":
            self.continuations += 1
        fault = self.draw(stream)
        if fault:
            self.injected[fault] += 1
            rid = headers.get("x-request-id", "-")
            entry = self.by_request.setdefault(rid, (time.monotonic(), []))
            entry[1].append(fault)

        if fault == "rst-head":
            reset(writer)
            return False
        if fault == "stall-head":
            return await self.stall(reader, writer)
        if fault in ("429", "429+ra"):
            extra = b"Retry-After: 1\r\n" if fault == "429+ra" else b""
            writer.write(error_answer(429, b"Too Many Requests", "injected_429", extra))
            await writer.drain()
            return True
        if fault == "500":
            writer.write(error_answer(500, b"Internal Server Error", "injected_500"))
            await writer.drain()
            return True
        if stream:
            return await self.stream(fault, reader, writer)
        answer = EMBEDDINGS_ANSWER if path.endswith("/embeddings") else CHAT_ANSWER
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(answer)
        if fault in ("rst-body", "stall-body"):
            writer.write(head + answer[:10])  # the head and a little of the body
            await writer.drain()
            if fault == "stall-body":
                return await self.stall(reader, writer)
            await asyncio.sleep(0.05)  # let the gateway read the head before the reset
            reset(writer)
            return False
        writer.write(head + answer)
        await writer.drain()
        return True

    async def stream(self, fault, reader, writer):
        def event(text):
            data = text.encode()
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))

        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        event(ROLE_EVENT)
        if fault == "bad-sse":
            event(GARBAGE_EVENTS[0])  # before any content
        await writer.drain()
        if fault in ("rst-body", "stall-body"):  # head and role chunk, no content
            if fault == "stall-body":
                return await self.stall(reader, writer)
            await asyncio.sleep(0.05)
            reset(writer)
            return False
        for i, content in enumerate(CONTENT_EVENTS):
            event(content)
            if i == 4 and fault == "bad-sse":
                event(GARBAGE_EVENTS[1])  # among the content
            await writer.drain()
            await asyncio.sleep(CHUNK_GAP_S)
            if i == 2 and fault == "stall-stream":
                return await self.stall(reader, writer)
            if i == 2 and fault == "rst-stream":
                reset(writer)
                return False
        event(END_EVENTS)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    async def stall(self, reader, writer):
        """Sends nothing until the gateway closes the connection (it timed out, as it should)
        or stall_s passes (it did not: counted), then closes."""
        try:
            await asyncio.wait_for(reader.read(1), self.stall_s)
        except asyncio.TimeoutError:
            self.stalls_held += 1
        writer.transport.abort()
        return False


# --- the gateway, seen from outside ----------------------------------------------------------------
def proc_status(pid):
    """(RSS in MB, open descriptors), or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        return rss / 1024, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return None


class Dashboard:
    """The dashboard's JSON API on the admin listener, signed in like the page: POST
    /ui/api/session {"key": ...} gives the `sb_session` cookie and a CSRF token (needed for
    writes only; used here to sign out)."""

    def __init__(self, host, port, key):
        self.host, self.port, self.key = host, port, key
        self.cookie = None
        self.csrf = None

    def call(self, method, path, body=None, headers=None):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.getheader("Set-Cookie"), response.read()
        finally:
            connection.close()

    def sign_in(self):
        status, set_cookie, body = self.call(
            "POST", "/ui/api/session", json.dumps({"key": self.key}), {"Content-Type": "application/json"})
        if status != 200 or not set_cookie:
            raise RuntimeError(f"dashboard sign-in answered {status}: {body[:200]!r}")
        self.cookie = set_cookie.split(";")[0]  # sb_session=<id>
        self.csrf = json.loads(body)["csrf"]

    def get(self, what):
        if self.cookie is None:
            self.sign_in()
        status, _, body = self.call("GET", f"/ui/api/{what}", headers={"Cookie": self.cookie})
        if status == 401:  # the session ended (idle or lifetime): sign in again
            self.sign_in()
            status, _, body = self.call("GET", f"/ui/api/{what}", headers={"Cookie": self.cookie})
        if status != 200:
            raise RuntimeError(f"dashboard {what} answered {status}: {body[:200]!r}")
        return json.loads(body)["list"]

    def gauges(self):
        """(sum of in_flight over the soak route's instances, sum of reserved over the quotas)."""
        in_flight = sum(row.get("in_flight", 0) for row in self.get("instances") if row.get("route_id") == ROUTE_ID)
        reserved = sum(row.get("reserved", 0) for row in self.get("quotas"))
        return in_flight, reserved

    def sign_out(self):
        if self.cookie:
            self.call("DELETE", "/ui/api/session", headers={"Cookie": self.cookie, "X-CSRF-Token": self.csrf})


def configure_route(admin_host, admin_port, key, ports, timeout_ms):
    instances = [{
        "name": f"fake-{i + 1}", "provider": "openai-compatible", "weight": 1,
        "auth": {"header": {"Authorization": "Bearer fake-key"}},
        "override": {"endpoint": f"http://127.0.0.1:{port}"},
        # One instance takes continuations: a break on any instance is continued there, and
        # when that fails too the client gets the in-band error.
        "supports_assistant_prefill": i == 0,
    } for i, port in enumerate(ports)]
    route = {"uri": "/v1/*", "plugins": {
        "ai-proxy-multi": {
            "instances": instances,
            "fallback_strategy": ["http_429", "http_5xx", "rate_limiting"],
            # One fallback after the first instance: with in-place retries that is up to four
            # attempts, so a request fails now and then and the reconciliation has work to do.
            "max_retries": 1,
            "retry": {"per_instance": 1, "backoff_ms": 50, "max_backoff_ms": 400, "jitter": True,
                      "honor_retry_after": True, "max_retry_after_ms": 1500},
            # Stalls should end in seconds, not the default 30 s (`timeout`).
            "timeout": timeout_ms, "response_header_timeout_ms": timeout_ms,
            "first_token_timeout_ms": timeout_ms, "stream_idle_timeout_ms": timeout_ms,
            "request_timeout_ms": 20000,
            "stream_continuation": True,
        },
        # Reserved and settled on every request, never exhausted. A day-long window: a
        # reservation leaked in it stays visible until the end of the soak.
        "ai-rate-limiting": {"limit": 1_000_000_000_000, "time_window": 86400},
    }}
    connection = http.client.HTTPConnection(admin_host, admin_port, timeout=10)
    try:
        connection.request("PUT", f"/apisix/admin/routes/{ROUTE_ID}", json.dumps(route),
                           {"X-API-KEY": key, "Content-Type": "application/json"})
        response = connection.getresponse()
        body = response.read()
        if response.status not in (200, 201):
            raise RuntimeError(f"route PUT answered {response.status}: {body[:300]!r}")
    finally:
        connection.close()


# --- the client -------------------------------------------------------------------------------------
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
USER = {"role": "user", "content": "Summarise the plot of Hamlet in two sentences, please."}
BODIES = {
    "chat": ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [SYSTEM, USER], "max_tokens": 64}),
    "stream": ("/v1/chat/completions",
               {"model": "gpt-4o-mini", "stream": True, "messages": [SYSTEM, USER], "max_tokens": 64}),
    "embeddings": ("/v1/embeddings", {"model": "text-embedding-3-small", "input": "The quick brown fox"}),
}
BODIES = {k: (path, json.dumps(body).encode()) for k, (path, body) in BODIES.items()}


def error_of(body):
    """(code, message) from an error body: OpenAI's {"error": {...}}, APISIX's {"error_msg"},
    {"message"}, or plain text."""
    try:
        parsed = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace").strip()
        return text[:40] or "-", text
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict):
            return str(error.get("code") or error.get("type") or "-"), str(error.get("message", ""))
        for field in ("error_msg", "message"):
            if isinstance(parsed.get(field), str):
                return parsed[field][:40], parsed[field]
    return "-", body[:200].decode("utf-8", "replace")


def classify(kind, status, headers, body):
    """(class, message) of one answer as the client sees it."""
    if not 200 <= status < 300:
        code, message = error_of(body)
        return f"{status}:{code}", message
    if kind != "stream":
        try:
            answer = json.loads(body)
        except ValueError:
            return "bad-2xx:not-json", body[:200].decode("utf-8", "replace")
        field = "data" if kind == "embeddings" else "choices"
        if not (isinstance(answer, dict) and answer.get(field)):
            return "bad-2xx:no-" + field, body[:200].decode("utf-8", "replace")
        return "ok", ""
    if "text/event-stream" not in headers.get("content-type", ""):
        return "bad-2xx:not-sse", headers.get("content-type", "")
    data = [line[5:].strip() for line in body.decode("utf-8", "replace").split("\n") if line.startswith("data:")]
    content = 0
    for i, payload in enumerate(data):
        if payload == "[DONE]":
            if i != len(data) - 1:
                return "bad-2xx:events-after-done", ""
            continue
        try:
            event = json.loads(payload)
        except ValueError:  # the gateway drops malformed events: one reaching the client is a bug
            return "bad-2xx:garbage-relayed", payload[:80]
        if isinstance(event, dict) and "error" in event:
            error = event["error"] if isinstance(event["error"], dict) else {}
            if i != len(data) - 1:
                return "bad-2xx:events-after-error", ""
            return f"inband:{error.get('code', '-')}", str(error.get("message", ""))
        for choice in event.get("choices") or []:
            if (choice.get("delta") or {}).get("content"):
                content += 1
    if not data or data[-1] != "[DONE]":
        return "bad-2xx:no-done", ""
    if content == 0:
        return "bad-2xx:no-content", ""
    return "ok", ""


def explaining_kinds(result, message=None):
    """The fault kinds that can explain a client-visible result. The gateway hides a fault by
    retrying or falling over; the client sees one only when every attempt failed (the last
    failure's answer: status and body as the provider sent them, or the gateway's own 502/504)
    or when a stream broke after content and could not be continued (the in-band error of that
    first break). With `message`, narrowed by what the gateway said."""
    cls, _, code = result.partition(":")
    if cls == "inband":
        if code != "stream_broken":
            return set()
        if message is None:
            return {"rst-stream", "stall-stream"}
        return {"stall-stream"} if "idle" in message else {"rst-stream"}
    if not cls.isdigit():
        return set()  # bad 2xx, connection errors, client exceptions: never a provider's doing
    if code == "injected_429":
        return set(RATE_LIMITS)
    if code == "injected_500":
        return {"500"}
    if code in ("upstream_unreachable", "stream_empty"):  # reset, or closed before content
        return set(RESETS)
    if code == "upstream_timeout":
        # The request's own budget (request_timeout_ms) can only run out when faults cost time.
        if message is not None and "request_timeout" in message:
            return set(KINDS)
        return set(STALLS)
    return set()  # a gateway-made error no fault explains (e.g. 500 "internal error")


def explain(result, message, faults):
    """Whether the faults injected into one request explain what its client saw."""
    return bool(explaining_kinds(result, message) & set(faults))


class Client:
    def __init__(self, host, port, fakes, rng):
        self.host, self.port = host, port
        self.fakes = fakes
        self.rng = rng
        self.idle = []  # keep-alive connections: (reader, writer, idle since)
        self.sent = 0
        self.results = collections.Counter()  # class -> count
        self.unexplained = collections.Counter()
        self.examples = {}  # unexplained class -> (request id, message, faults)
        self.faulted_ok = 0  # requests that met a fault and still succeeded
        self.tasks = set()
        self.sequence = 0

    def launch(self):
        self.sequence += 1
        self.sent += 1
        task = asyncio.get_running_loop().create_task(self.request(self.sequence))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def connection(self):
        now = time.monotonic()
        while self.idle:
            reader, writer, since = self.idle.pop()
            if now - since < IDLE_CONNECTION_S and not reader.at_eof():
                return reader, writer, True
            writer.close()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return reader, writer, False

    async def request(self, n):
        rid = f"soak-{n:09d}"
        kind = self.rng.choice(("chat", "stream", "embeddings"))
        try:
            result, message = await asyncio.wait_for(self.exchange(kind, rid), CLIENT_TIMEOUT_S)
        except asyncio.TimeoutError:
            result, message = "conn:client-timeout", f"no complete answer in {CLIENT_TIMEOUT_S} s"
        except Exception as e:  # never lose a request: an unexpected error is a result too
            result, message = f"client:{type(e).__name__}", str(e)
        faults = self.fakes.take(rid)
        self.results[result] += 1
        if result == "ok":
            self.faulted_ok += bool(faults)
        elif not explain(result, message, faults):
            self.unexplained[result] += 1
            self.examples.setdefault(result, (rid, message[:160], faults))

    async def exchange(self, kind, rid):
        path, body = BODIES[kind]
        reader, writer, reused = await self.connection()
        reusable = False
        answered = False
        try:
            writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                         f"X-Request-Id: {rid}\r\n\r\n".encode() + body)
            await writer.drain()
            head = await read_head(reader)
            if head is None:
                raise ConnectionResetError("connection closed before the response")
            answered = True
            line, headers = head
            status = int(line.split(" ")[1])
            answer = await read_body(reader, headers)
            reusable = ("content-length" in headers or "chunked" in headers.get("transfer-encoding", "")) \
                and headers.get("connection", "").lower() != "close"
            return classify(kind, status, headers, answer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError) as e:
            where = "mid-body" if answered else ("before-head-reused" if reused else "before-head")
            return f"conn:{where}", repr(e)
        finally:
            if reusable and len(self.idle) < 256:
                self.idle.append((reader, writer, time.monotonic()))
            else:
                writer.close()

    def close(self):
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


# --- the soak ---------------------------------------------------------------------------------------
def counts(counter, order=None):
    keys = order or sorted(counter, key=lambda k: (-counter[k], k))
    text = ", ".join(f"{k} {counter[k]}" for k in keys if counter[k])
    return text or "-"


def percent(first, last):
    return f"{(last - first) / first * 100:+.1f} %" if first else "n/a"


async def soak(args):
    rng = random.Random(args.seed)
    ports = [int(p) for p in args.fake_ports.split(",")]
    proxy_host, proxy_port = args.proxy.rsplit(":", 1)
    admin_host, admin_port = args.admin.rsplit(":", 1)
    fakes = FakeProviders(ports, stall_s=3 * args.timeout_ms / 1000, rng=rng)
    await fakes.start()
    configure_route(admin_host, int(admin_port), args.admin_key, ports, args.timeout_ms)
    dashboard = Dashboard(admin_host, int(admin_port), args.admin_key)
    await asyncio.to_thread(dashboard.sign_in)
    client = Client(proxy_host, int(proxy_port), fakes, rng)

    print(f"Soak under faults: {args.minutes} min, {args.rate} requests/s open loop (chat, stream and "
          f"embeddings, a third each), route `{ROUTE_ID}`: ai-proxy-multi over {len(ports)} fake providers, "
          f"retry per_instance 1, max_retries 1, timeouts {args.timeout_ms} ms (stalls last until the gateway "
          f"gives up, at most {3 * args.timeout_ms / 1000:.0f} s), stream continuation on fake-1, "
          f"ai-rate-limiting never exhausted. Seed {args.seed}.")
    print()
    print("Faults, drawn per upstream attempt: " + "; ".join(
        f"`{kind}` {p * 100:.0f} %{' (streams)' if streams else ''}: {what}" for kind, p, streams, what in FAULTS) + ".")
    print()
    print("| minute | RSS MB | fds | in-flight | reserved | sent | ok | client errors | faults injected |")
    print("|---|---|---|---|---|---|---|---|---|")
    sys.stdout.flush()

    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + args.minutes * 60
    rows = []  # (minute, rss, fds)
    failed = []

    async def sample(minute, previous):
        status = proc_status(args.gateway_pid)
        if status is None:
            failed.append(f"the gateway (pid {args.gateway_pid}) is gone")
            return previous
        rss, fds = status
        try:
            in_flight, reserved = await asyncio.to_thread(dashboard.gauges)
        except (OSError, RuntimeError, ValueError) as e:
            in_flight = reserved = f"? ({e})"
        sent, results, injected = client.sent, client.results.copy(), fakes.injected.copy()
        errors = results - previous[1]
        del errors["ok"]
        print(f"| {minute} | {rss:.1f} | {fds} | {in_flight} | {reserved} | {sent - previous[0]} | "
              f"{results['ok'] - previous[1]['ok']} | {counts(errors)} | "
              f"{counts(injected - previous[2], KINDS)} |")
        sys.stdout.flush()
        rows.append((minute, rss, fds))
        fakes.prune()
        return sent, results, injected

    async def reporter():
        previous = (0, collections.Counter(), collections.Counter())
        for minute in range(1, args.minutes + 1):
            await asyncio.sleep(max(0.0, start + minute * 60 - loop.time()))
            previous = await sample(minute, previous)
            if failed:
                return

    reporting = asyncio.create_task(reporter())
    # Open loop: requests go out on schedule whatever the answers do.
    interval = 1 / args.rate
    next_at = start
    while next_at < end and not failed:
        await asyncio.sleep(max(0.0, next_at - loop.time()))
        client.launch()
        next_at += interval
    await reporting

    # Every request answered (or timed out on the client's side), then a few quiet seconds.
    if client.tasks:
        await asyncio.wait(set(client.tasks), timeout=CLIENT_TIMEOUT_S + 5)
    client.close()
    await asyncio.sleep(args.quiet)
    in_flight = reserved = None
    for _ in range(10):  # a stream's last relay step may still be finishing: poll briefly
        try:
            in_flight, reserved = await asyncio.to_thread(dashboard.gauges)
        except (OSError, RuntimeError, ValueError) as e:
            in_flight = reserved = f"? ({e})"
            break
        if in_flight == 0 and reserved == 0:
            break
        await asyncio.sleep(1)
    final = proc_status(args.gateway_pid)
    await asyncio.to_thread(dashboard.sign_out)
    await fakes.stop()

    # --- the summary ----------------------------------------------------------------------------------
    total_errors = sum(v for k, v in client.results.items() if k != "ok")
    unexplained = sum(client.unexplained.values())
    print()
    print(f"After the traffic stopped and {args.quiet:.0f} s of quiet:")
    print()
    print(f"- in-flight (dashboard, sum over instances): **{in_flight}**; reserved quota tokens (sum): **{reserved}**")
    if len(rows) >= 2:
        (m1, rss1, fds1), (m2, rss2, fds2) = rows[0], rows[-1]
        print(f"- RSS: {rss1:.1f} MB at minute {m1}, {rss2:.1f} MB at minute {m2} ({percent(rss1, rss2)}); "
              f"open fds: {fds1} → {fds2} ({percent(fds1, fds2)})")
    if final:
        print(f"- now: RSS {final[0]:.1f} MB, {final[1]} open fds")
    print(f"- requests: {client.sent} sent, {client.results['ok']} ok, {total_errors} client-visible errors; "
          f"{client.faulted_ok} requests met a fault and still succeeded")
    print(f"- upstream attempts seen by the fakes: {fakes.attempts} ({fakes.continuations} stream continuations); "
          f"{sum(fakes.injected.values())} faults injected")
    print(f"- stalls the gateway never gave up (connection still open after {fakes.stall_s:.0f} s): {fakes.stalls_held}")
    print()
    print("| fault | injected |")
    print("|---|---|")
    for kind in KINDS:
        print(f"| {kind} | {fakes.injected[kind]} |")
    print()
    print("Client-visible results, each checked against the faults injected into that same request:")
    print()
    print("| result | count | explained by | faults of those kinds injected | unexplained |")
    print("|---|---|---|---|---|")
    for result in sorted(client.results, key=lambda k: (k != "ok", -client.results[k], k)):
        if result == "ok":
            print(f"| ok | {client.results[result]} | | | |")
            continue
        by = [k for k in KINDS if k in explaining_kinds(result)]
        pool = sum(fakes.injected[k] for k in by)
        print(f"| {result} | {client.results[result]} | {', '.join(by) or 'nothing'} | "
              f"{pool if by else ''} | {client.unexplained[result]} |")
    for result, (rid, message, faults) in sorted(client.examples.items()):
        print(f"\nUnexplained `{result}`, e.g. request {rid} (faults injected: {faults or 'none'}): {message}")
    print()
    problems = list(failed)
    if in_flight != 0:
        problems.append(f"in-flight is {in_flight}, not 0")
    if reserved != 0:
        problems.append(f"reserved is {reserved}, not 0")
    if fakes.stalls_held:
        problems.append(f"{fakes.stalls_held} stalled upstream connections were never closed by the gateway")
    print(f"UNEXPLAINED: {unexplained}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if unexplained or problems else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proxy", required=True, help="the gateway's data plane, host:port")
    parser.add_argument("--admin", required=True, help="the gateway's admin listener (Admin API, dashboard)")
    parser.add_argument("--admin-key", required=True)
    parser.add_argument("--gateway-pid", type=int, required=True)
    parser.add_argument("--fake-ports", required=True, help=f"{INSTANCES} comma-separated ports for the fakes")
    parser.add_argument("--minutes", type=int, required=True)
    parser.add_argument("--rate", type=float, default=20, help="requests per second, all kinds together")
    parser.add_argument("--timeout-ms", type=int, default=2000, help="the route's header, first-token and idle timeouts")
    parser.add_argument("--quiet", type=float, default=5, help="seconds of quiet before the final check")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    try:
        status = asyncio.run(soak(args))
    except RuntimeError as e:
        print(f"soak.py: {e}", file=sys.stderr)
        status = 2
    sys.exit(status)


if __name__ == "__main__":
    main()
