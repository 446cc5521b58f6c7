import FuzzSupport
import SwitchboardCore

/// ``SSEDecoder`` on arbitrary provider streams, fed whole and in chunks.
///
/// Input: the first byte seeds the chunking (see ``chunks(of:seed:)``), the rest is the stream.
/// Checks that it never traps; that feeding the stream in one piece and in chunks gives the same
/// events and the same unfinished remainder; that the events' raw bytes followed by the
/// remainder are exactly the stream (nothing lost, nothing invented); that each event ends at a
/// blank line; and that re-decoding an event's raw bytes alone gives that event back.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSSE(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = inputBytes(start, count)
    guard let seed = input.first else { return 0 }
    let stream = input[1...]

    var whole = SSEDecoder()
    let wholeEvents: [SSEEvent]
    do { wholeEvents = try whole.feed(stream) } catch { return 0 }  // only past maxPending

    var split = SSEDecoder()
    var splitEvents: [SSEEvent] = []
    for chunk in chunks(of: stream, seed: seed) {
        do { splitEvents += try split.feed(chunk) } catch { fatalError("split feeding overflowed, whole did not") }
    }
    check(splitEvents == wholeEvents, "split feeding gave other events (seed \(seed)): \(show(stream))")
    check(split.remainder == whole.remainder, "split feeding left another remainder (seed \(seed))")

    var joined: [UInt8] = []
    for event in wholeEvents {
        joined += event.raw
        check(event.raw.last == 0x0A, "an event that does not end with a line feed: \(show(event.raw))")
        check(!event.type.isEmpty, "an event with an empty type")
        var alone = SSEDecoder()
        let again = try? alone.feed(event.raw)
        check(again == [event] && alone.remainder.isEmpty, "an event does not decode alone: \(show(event.raw))")
    }
    joined += whole.remainder
    check(joined.elementsEqual(stream), "events and remainder are not the stream: \(show(stream))")
    return 0
}

@main
enum Entry {
    static func main() { runLibFuzzer(fuzzSSE) }
}
