import FuzzSupport

@testable import SwitchboardCore

/// ``StreamInspector``, which reads every event of a provider's stream while it is relayed, on
/// arbitrary streams of every protocol.
///
/// Input: the first byte picks the protocol (its value modulo their count) and, by bit 7,
/// whether text is kept; the rest is a server-sent event stream. Checks that inspecting never
/// traps, and, for OpenAI chat, that the in-place reading (``JSONCursor``) gives every event the
/// verdict and the state (usage, model, text, tool calls, finish, end) the JSON tree gives it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStreamInspector(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = inputBytes(start, count)
    guard let first = input.first else { return 0 }
    let protocols = AIProtocol.allCases
    let proto = protocols[Int(first & 0x7F) % protocols.count]
    let keepText = first & 0x80 != 0

    var decoder = SSEDecoder()
    guard var events = try? decoder.feed(input[1...]) else { return 0 }
    // An unfinished last event: what the relay sees when the stream ends without a blank line.
    if !decoder.remainder.isEmpty { events.append(SSEDecoder.parse(decoder.remainder + [0x0A, 0x0A])) }

    var inPlace = StreamInspector(proto: proto, keepText: keepText)
    var tree = StreamInspector(proto: proto, keepText: keepText)
    for event in events {
        let verdict = inPlace.inspect(event, inPlace: true)
        let reference = tree.inspect(event, inPlace: false)
        check(verdict == reference, "\(proto): in place \(verdict), tree \(reference) for \(show(event.data.utf8))")
        check(state(inPlace) == state(tree), "\(proto): the state differs after \(show(event.data.utf8))")
        _ = inPlace.isComplete
        _ = inPlace.isFinished
    }
    return 0
}

/// What an inspector has gathered, as one comparable value.
func state(_ inspector: StreamInspector) -> String {
    let usage = inspector.usage
    return "\(usage.prompt)/\(usage.completion)/\(usage.total)/\(usage.cacheRead)/\(usage.cacheCreation)/"
        + "\(usage.reasoning) \(usage.raw.serialized()) \(inspector.model ?? "-") \(inspector.text) "
        + "\(inspector.hasToolCalls) \(inspector.sawFinishReason) \(inspector.sawDone) \(inspector.textBlock ?? -1)"
}

@main
enum Entry {
    static func main() { runLibFuzzer(fuzzStreamInspector) }
}
