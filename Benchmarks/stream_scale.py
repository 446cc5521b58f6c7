"""Streaming-scale scenario: N concurrent streaming requests through the gateway against a mock
that sends one chunk per second, measuring completion, time to first byte and the gateway's peak RSS.

Usage: stream_scale.py GATEWAY_PORT MOCK_PORT GATEWAY_PID STREAMS SECONDS
The mock listens on MOCK_PORT (started here); the gateway must route /scale/* to it.
"""
import asyncio
import json
import sys
import time

gateway_port, mock_port, gateway_pid, streams, seconds = (int(a) for a in sys.argv[1:6])
CHUNK = 'data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"tick "},"finish_reason":null}]}\n\n'
USAGE = 'data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":%d,"total_tokens":%d}}\n\n'


async def mock(reader, writer):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")

        def chunk(text):
            data = text.encode()
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))

        chunk('data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n')
        for _ in range(seconds):
            chunk(CHUNK)
            await writer.drain()
            await asyncio.sleep(1)
        chunk(USAGE % (seconds, seconds + 5))
        chunk("data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    except Exception:
        pass
    finally:
        writer.close()


def rss_kb():
    with open(f"/proc/{gateway_pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def client(results):
    body = json.dumps({"stream": True, "messages": [{"role": "user", "content": "tick"}]}).encode()
    start = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway_port)
        writer.write(
            b"POST /scale/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        first = None
        received = b""
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if first is None:
                first = time.monotonic() - start
            received += data
            if b"[DONE]" in received:
                break
        writer.close()
        results.append((first, b"[DONE]" in received, time.monotonic() - start))
    except Exception:
        results.append((None, False, time.monotonic() - start))


async def main():
    server = await asyncio.start_server(mock, "127.0.0.1", mock_port, backlog=65535)
    results = []
    peak = rss_kb()
    before = peak
    tasks = []
    for i in range(streams):
        tasks.append(asyncio.create_task(client(results)))
        if i % 200 == 199:
            await asyncio.sleep(0.05)
    while len(results) < streams:
        await asyncio.sleep(0.5)
        peak = max(peak, rss_kb())
    server.close()
    firsts = sorted(r[0] for r in results if r[0] is not None)
    done = sum(1 for r in results if r[1])
    p = lambda q: firsts[min(len(firsts) - 1, int(q * len(firsts)))] * 1000 if firsts else float("nan")
    print(json.dumps({
        "streams": streams, "completed": done, "rss_before_kb": before, "rss_peak_kb": peak,
        "kb_per_stream": round((peak - before) / max(streams, 1), 1),
        "ttfb_p50_ms": round(p(0.5), 1), "ttfb_p99_ms": round(p(0.99), 1),
    }))


asyncio.run(main())
