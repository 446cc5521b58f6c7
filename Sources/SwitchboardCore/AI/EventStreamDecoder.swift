/// AWS's event stream framing (`application/vnd.amazon.eventstream`, Bedrock's ConverseStream):
/// binary messages of `total length (4) · headers length (4) · prelude CRC32 (4) · headers ·
/// payload · message CRC32 (4)`, big-endian. Messages are turned into ``SSEEvent``s so the relay
/// treats them like server-sent events: `type` is the `:event-type` header (`error` for an
/// exception, its type and message in `data`), `data` the JSON payload, `raw` the frame.
public struct EventStreamDecoder: Sendable {
    /// The largest message accepted; a provider sending garbage cannot make the gateway buffer
    /// without bound (as ``SSEDecoder/maxPending``).
    public static let maxMessage = 1 << 20
    private var pending: [UInt8] = []

    public struct Malformed: Error, CustomStringConvertible {
        public var description: String
    }

    public init() {}

    public mutating func feed(_ bytes: some Collection<UInt8>) throws(Malformed) -> [SSEEvent] {
        pending.append(contentsOf: bytes)
        var events: [SSEEvent] = []
        var start = 0
        while pending.count - start >= 12 {
            let total = Int(Self.uint32(pending, start))
            let headersLength = Int(Self.uint32(pending, start + 4))
            guard total >= 16, total <= Self.maxMessage, headersLength <= total - 16 else {
                throw Malformed(description: "an event stream message of \(total) bytes")
            }
            guard CRC32.checksum(pending[start..<start + 8]) == Self.uint32(pending, start + 8) else {
                throw Malformed(description: "an event stream prelude with a wrong checksum")
            }
            guard pending.count - start >= total else { break }
            let end = start + total
            guard CRC32.checksum(pending[start..<end - 4]) == Self.uint32(pending, end - 4) else {
                throw Malformed(description: "an event stream message with a wrong checksum")
            }
            let headers = try Self.headers(pending[start + 12..<start + 12 + headersLength])
            let payload = pending[start + 12 + headersLength..<end - 4]
            let text = String(decoding: payload, as: UTF8.self)
            let type: String
            let data: String
            if headers[":message-type"] == "exception" || headers[":message-type"] == "error" {
                type = "error"
                let kind = headers[":exception-type"] ?? headers[":error-code"] ?? "exception"
                data = "\(kind): \(text)"
            } else {
                type = headers[":event-type"] ?? "message"
                data = text
            }
            events.append(SSEEvent(raw: Array(pending[start..<end]), type: type, data: data))
            start = end
        }
        pending.removeFirst(start)
        return events
    }

    static func uint32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
    }

    /// The string-valued headers (the only ones Bedrock's events use); others are skipped.
    static func headers(_ bytes: ArraySlice<UInt8>) throws(Malformed) -> [String: String] {
        var out: [String: String] = [:]
        var i = bytes.startIndex
        let bad = Malformed(description: "malformed event stream headers")
        while i < bytes.endIndex {
            let nameLength = Int(bytes[i])
            i += 1
            guard i + nameLength < bytes.endIndex else { throw bad }
            let name = String(decoding: bytes[i..<i + nameLength], as: UTF8.self)
            i += nameLength
            let kind = bytes[i]
            i += 1
            let fixed: [UInt8: Int] = [0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16]
            if let size = fixed[kind] {
                guard i + size <= bytes.endIndex else { throw bad }
                i += size
            } else if kind == 6 || kind == 7 {
                guard i + 2 <= bytes.endIndex else { throw bad }
                let length = Int(bytes[i]) << 8 | Int(bytes[i + 1])
                i += 2
                guard i + length <= bytes.endIndex else { throw bad }
                if kind == 7 { out[name] = String(decoding: bytes[i..<i + length], as: UTF8.self) }
                i += length
            } else {
                throw bad
            }
        }
        return out
    }

    /// One message with string headers, as AWS frames it (for errors the gateway reports in
    /// band, and for tests).
    public static func encode(headers: [(String, String)], payload: [UInt8]) -> [UInt8] {
        var head: [UInt8] = []
        for (name, value) in headers {
            let nameBytes = Array(name.utf8.prefix(255))
            let valueBytes = Array(value.utf8.prefix(65535))
            head.append(UInt8(nameBytes.count))
            head += nameBytes
            head.append(7)
            head += [UInt8(valueBytes.count >> 8), UInt8(valueBytes.count & 0xff)]
            head += valueBytes
        }
        let total = 16 + head.count + payload.count
        var out = bigEndian(UInt32(total)) + bigEndian(UInt32(head.count))
        out += bigEndian(CRC32.checksum(out[...]))
        out += head
        out += payload
        out += bigEndian(CRC32.checksum(out[...]))
        return out
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }
}
