#!/usr/bin/env python3
"""Writes the seed corpus of FuzzEventStream: Bedrock ConverseStream messages framed as AWS's
event stream frames them (total length, headers length, prelude CRC32, headers, payload,
message CRC32; big-endian), the way EventStreamDecoder.encode(headers:payload:) does, plus
headers of every other value type. Each file starts with the fuzz target's control byte (low 7
bits: chunking seed; bit 7: rewrite checksums). Run it from anywhere; it rewrites
Fuzz/Corpus/FuzzEventStream/."""
import os
import struct
import zlib

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Corpus", "FuzzEventStream")


def header(name, kind, value=b""):
    name = name.encode()
    out = bytes([len(name)]) + name + bytes([kind])
    if kind in (6, 7):
        out += struct.pack(">H", len(value))
    return out + value


def string_headers(pairs):
    return b"".join(header(n, 7, v.encode()) for n, v in pairs)


def frame(headers, payload):
    total = 16 + len(headers) + len(payload)
    prelude = struct.pack(">II", total, len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event(kind, payload):
    pairs = [(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")]
    return frame(string_headers(pairs), payload.encode())


converse = b"".join([
    event("messageStart", '{"p":"abcd","role":"assistant"}'),
    event("contentBlockStart", '{"contentBlockIndex":0,"start":{"toolUse":{"toolUseId":"t1","name":"add"}}}'),
    event("contentBlockDelta", '{"contentBlockIndex":0,"delta":{"text":"Hello \\u00e9"}}'),
    event("contentBlockStop", '{"contentBlockIndex":0}'),
    event("messageStop", '{"stopReason":"end_turn"}'),
    event("metadata", '{"usage":{"inputTokens":10,"outputTokens":3,"totalTokens":13},"metrics":{"latencyMs":120}}'),
])
exception = frame(
    string_headers([(":exception-type", "throttlingException"), (":content-type", "application/json"),
                    (":message-type", "exception")]),
    b'{"message":"Too many requests, please wait before trying again."}')
error = frame(string_headers([(":error-code", "InternalFailure"), (":message-type", "error")]), b"boom")
typed = frame(
    header("bool-true", 0) + header("bool-false", 1) + header("byte", 2, b"\x7f") + header("short", 3, b"\x00\x01")
    + header("int", 4, b"\x00\x00\x00\x02") + header("long", 5, b"\x00" * 7 + b"\x03")
    + header("bytes", 6, b"\x00\xff") + header("time", 8, b"\x00" * 8) + header("uuid", 9, b"\x11" * 16)
    + header(":event-type", 7, b"contentBlockDelta"),
    b'{"delta":{"text":"typed headers"}}')
empty = frame(b"", b"")

seeds = {
    "converse-stream.bin": b"\x05" + converse,
    "converse-stream-bytewise.bin": b"\x00" + converse,
    "converse-stream-fixed-crc.bin": b"\x97" + converse,
    "exception.bin": b"\x01" + exception,
    "error-code.bin": b"\x13" + error,
    "typed-headers.bin": b"\x88" + typed,
    "empty-frame-then-partial.bin": b"\x02" + empty + converse[:40],
}
os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
