import FuzzSupport
import SwitchboardCore

/// ``EventStreamDecoder`` (Bedrock's binary `application/vnd.amazon.eventstream`) on arbitrary
/// bytes, fed whole and in chunks.
///
/// Input: the first byte's low 7 bits seed the chunking (see ``chunks(of:seed:)``); when its
/// high bit is set, the CRC32s of the frames the rest spells out are rewritten to be right
/// before decoding, so the fuzzer gets past the checksums to the headers and payloads. Checks
/// that it never traps; that whole and chunked feeding agree (the same events, or both fail with
/// the same message); that every event's raw bytes are one whole frame that decodes alone to the
/// same event; and that ``EventStreamDecoder/encode(headers:payload:)`` of headers and a payload
/// taken from the input decodes back to them.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEventStream(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = inputBytes(start, count)
    guard let first = input.first else { return 0 }
    var stream = Array(input[1...])
    if first & 0x80 != 0 { fixChecksums(&stream) }
    let seed = first & 0x7F

    let whole = decode([stream[...]])
    let split = decode(chunks(of: stream[...], seed: seed))
    switch (whole.failure, split.failure) {
    case (nil, nil):
        check(whole.events == split.events, "split feeding gave other events (seed \(seed)): \(show(stream))")
    case (let a?, let b?):
        check(a == b, "whole feeding failed with \"\(a)\", split feeding with \"\(b)\"")
    default:
        fatalError("whole feeding: \(whole.failure ?? "ok"), split feeding: \(split.failure ?? "ok"): \(show(stream))")
    }
    var framed: [UInt8] = []
    for event in whole.events {
        framed += event.raw
        check(event.raw.count >= 16, "an event of \(event.raw.count) bytes")
        let alone = decode([event.raw[...]])
        check(alone.failure == nil && alone.events == [event], "an event does not decode alone: \(show(event.raw))")
    }
    check(stream.starts(with: framed), "the events' frames are not the start of the stream: \(show(stream))")

    roundTrip(Array(input.dropFirst()))
    return 0
}

/// The events of `pieces` fed one after the other, or the message of the first failure.
func decode(_ pieces: [ArraySlice<UInt8>]) -> (events: [SSEEvent], failure: String?) {
    var decoder = EventStreamDecoder()
    var events: [SSEEvent] = []
    for piece in pieces {
        do { events += try decoder.feed(piece) } catch { return (events, error.description) }
    }
    return (events, nil)
}

/// Rewrites the prelude and message CRC32s of the frames laid end to end in `bytes` (as far as
/// their lengths fit), so that only the lengths, headers and payloads are left to chance.
func fixChecksums(_ bytes: inout [UInt8]) {
    var start = 0
    while bytes.count - start >= 12 {
        let total = Int(uint32(bytes, start))
        guard total >= 16, total <= bytes.count - start else { return }
        put(CRC32.checksum(bytes[start..<start + 8]), into: &bytes, at: start + 8)
        put(CRC32.checksum(bytes[start..<start + total - 4]), into: &bytes, at: start + total - 4)
        start += total
    }
}

func uint32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
    UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
}

func put(_ value: UInt32, into bytes: inout [UInt8], at: Int) {
    for i in 0..<4 { bytes[at + i] = UInt8(truncatingIfNeeded: value >> (24 - 8 * i)) }
}

/// Headers and a payload read from `bytes` (a length byte, then that many bytes, for a name, a
/// value, a name ...; what is left is the payload), encoded and decoded again.
func roundTrip(_ bytes: [UInt8]) {
    var headers: [(String, String)] = []
    var rest = bytes[...]
    while headers.count < 4, let length = rest.first, rest.count > Int(length) {
        let field = String(decoding: rest.dropFirst().prefix(Int(length)), as: UTF8.self)
        rest = rest.dropFirst(Int(length) + 1)
        headers.append((field, ""))
        guard let valueLength = rest.first, rest.count > Int(valueLength) else { break }
        headers[headers.count - 1].1 = String(decoding: rest.dropFirst().prefix(Int(valueLength)), as: UTF8.self)
        rest = rest.dropFirst(Int(valueLength) + 1)
    }
    let frame = EventStreamDecoder.encode(headers: headers, payload: Array(rest))
    let decoded = decode([frame[...]])
    guard decoded.failure == nil else {
        fatalError("an encoded frame does not decode (\(decoded.failure!)): \(show(frame))")
    }
    check(decoded.events.count == 1 && decoded.events[0].raw == frame, "an encoded frame decodes to other events")
    var last: [String: String] = [:]
    for (name, value) in headers where name.utf8.count <= 255 { last[name] = value }
    let event = decoded.events[0]
    let payload = String(decoding: rest, as: UTF8.self)
    if last[":message-type"] == "exception" || last[":message-type"] == "error" {
        let kind = last[":exception-type"] ?? last[":error-code"] ?? "exception"
        check(event.type == "error", "an exception frame decodes as \(event.type)")
        check(event.data.utf8.elementsEqual("\(kind): \(payload)".utf8), "an exception frame decodes differently")
    } else {
        check(event.type == (last[":event-type"] ?? "message"), "an encoded frame's type decodes as \(event.type)")
        check(event.data.utf8.elementsEqual(payload.utf8), "an encoded frame's payload decodes differently")
    }
}

@main
enum Entry {
    static func main() { runLibFuzzer(fuzzEventStream) }
}
