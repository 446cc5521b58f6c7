/// One server-sent event: its raw bytes (to relay untouched) and its parsed fields.
public struct SSEEvent: Sendable, Equatable {
    /// The event's bytes including the blank line that ends it.
    public var raw: [UInt8]
    /// `event:` (default `message`).
    public var type: String
    /// `data:` lines joined with `\n`.
    public var data: String
}

/// Splits a byte stream into server-sent events as bytes arrive: events end at a blank line
/// (`\n\n` or `\r\n\r\n`); an event split across reads waits for its end. A partial event larger
/// than `maxPending` is an error (a provider sending garbage cannot make the gateway buffer
/// without bound).
public struct SSEDecoder: Sendable {
    public static let maxPending = 1 << 20
    private var pending: [UInt8] = []
    private var scanFrom = 0

    public init() {}

    public struct Overflow: Error {}

    /// Events completed by `bytes`.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(Overflow) -> [SSEEvent] {
        pending.append(contentsOf: bytes)
        var events: [SSEEvent] = []
        var start = 0
        var i = max(scanFrom, 0)
        while i < pending.count {
            if pending[i] == 0x0A {
                // A blank line: "\n\n" or "\n\r\n".
                var next = i + 1
                if next < pending.count, pending[next] == 0x0D { next += 1 }
                if next < pending.count, pending[next] == 0x0A {
                    let end = next + 1
                    events.append(Self.parse(Array(pending[start..<end])))
                    start = end
                    i = end
                    continue
                }
            }
            i += 1
        }
        if start > 0 { pending.removeFirst(start) }
        scanFrom = max(pending.count - 2, 0)
        if pending.count > Self.maxPending { throw Overflow() }
        return events
    }

    /// Bytes of an unfinished event left at the end of the stream.
    public var remainder: [UInt8] { pending }

    /// Parses one event's lines on the bytes (no per-line strings: this runs for every chunk
    /// of every stream): comments skipped, `field: value` with one optional space, CR-LF or LF.
    static func parse(_ raw: [UInt8]) -> SSEEvent {
        var type = "message"
        var data: [UInt8] = []
        var dataLines = 0
        raw.withUnsafeBufferPointer { bytes in
            var lineStart = 0
            while lineStart < bytes.count {
                var lineEnd = lineStart
                while lineEnd < bytes.count, bytes[lineEnd] != 0x0A { lineEnd += 1 }
                var end = lineEnd
                if end > lineStart, bytes[end - 1] == 0x0D { end -= 1 }
                defer { lineStart = lineEnd + 1 }
                guard end > lineStart, bytes[lineStart] != UInt8(ascii: ":") else { continue }
                var colon = lineStart
                while colon < end, bytes[colon] != UInt8(ascii: ":") { colon += 1 }
                var valueStart = min(colon + 1, end)
                if valueStart < end, bytes[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
                let field = UnsafeBufferPointer(rebasing: bytes[lineStart..<colon])
                let value = UnsafeBufferPointer(rebasing: bytes[valueStart..<end])
                if field.elementsEqual("data".utf8) {
                    if dataLines > 0 { data.append(0x0A) }
                    data.append(contentsOf: value)
                    dataLines += 1
                } else if field.elementsEqual("event".utf8), !value.isEmpty {
                    type = String(decoding: value, as: UTF8.self)
                }
            }
        }
        return SSEEvent(raw: raw, type: type, data: String(decoding: data, as: UTF8.self))
    }
}
