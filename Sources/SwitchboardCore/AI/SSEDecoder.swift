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

    static func parse(_ raw: [UInt8]) -> SSEEvent {
        var type = "message"
        var data: [Substring] = []
        let text = String(decoding: raw, as: UTF8.self)
        for line in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            if line.hasPrefix(":") { continue }
            let parts = line.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let field = parts[0]
            var value = parts.count > 1 ? parts[1] : ""
            if value.hasPrefix(" ") { value = value.dropFirst() }
            if value.hasSuffix("\r") { value = value.dropLast() }
            switch field {
            case "event": type = String(value)
            case "data": data.append(value)
            default: break
            }
        }
        return SSEEvent(raw: raw, type: type, data: data.joined(separator: "\n"))
    }
}
